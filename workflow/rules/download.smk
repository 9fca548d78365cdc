# Rules of the download stage; input functions live in common.smk.
