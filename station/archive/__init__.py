"""What an archive office (档案室) needs from the station: archive numbers (档号) with their
retention periods (保管期限), and metadata records of audio-visual electronic records in the
elements of DA/T 63-2017, as UTF-8 XML validated by the station's own schema."""
