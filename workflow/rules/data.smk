# Rules of the data stage; input functions live in common.smk.
