"""Help while writing a routine: `voiceguide new` and `voiceguide schema`."""
