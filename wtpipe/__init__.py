"""wtpipe: self-supervised pretraining of image encoders on long egocentric video."""

__version__ = "0.1.0"
