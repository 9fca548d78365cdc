# Rules of the synth stage; input functions live in common.smk.
