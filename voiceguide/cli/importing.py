"""`voiceguide import`: routines from other tools, as voiceguide routines."""
