"""Face camera: OpenCV capture driver and its settings."""
