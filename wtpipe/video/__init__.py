"""Video in: probing, keyframe-aligned work units, decoding, dead-footage tests."""

BACKENDS = ("pyav", "decord")  # decoders; here so that command-line parsers need not import them
