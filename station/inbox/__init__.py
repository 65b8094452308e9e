"""The watched inbox: footage from devices without a dock (cameras, camcorders, sound recorders),
picked up from inbox folders with the same guarantees as the dock (R1, R5, R6, R7)."""
