"""WebDataset shards of long videos: build, read, verify, describe."""

FRAME_FORMATS = (
    "jpg",
    "mp4",
)  # how a segment's frames are stored; here so that parsers need not import the writer
