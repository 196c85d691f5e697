"""Store-and-forward delivery of passage records to the central system and its backups."""
