"""Stand-in for LTU-AS's modified Whisper (YuanGongND/ltu@bd646a4
``src/ltu_as/whisper/whisper``)."""
