"""sprig's version, in a module of its own: modules that record it (file manifests, run
folders, exports) import it from here, never from the package root, which imports them."""

__version__ = "0.1.0"
