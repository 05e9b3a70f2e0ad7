"""radarcast: radar precipitation nowcasting from one command line."""

__version__ = "0.1.0"
