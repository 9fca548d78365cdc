# Rules of the evaluate stage; input functions live in common.smk.
