# Rules of the train stage; input functions live in common.smk.
