"""The watched inbox: footage from devices without a dock (cameras, camcorders, sound recorders),
picked up from inbox folders with the same guarantees as the dock (issue 8; R1, R5, R6, R7)."""
