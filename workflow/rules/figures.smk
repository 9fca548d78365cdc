# Rules of the figures stage; input functions live in common.smk.
