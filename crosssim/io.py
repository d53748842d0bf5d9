"""Old name of :mod:`crosssim.files` (kept only while ``crosssim/model.py`` imports it).

Import from :mod:`crosssim.files`; this module goes once nothing imports it.
"""

from crosssim.files import atomic_open, atomic_write_bytes, atomic_write_text

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text"]
