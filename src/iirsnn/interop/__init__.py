"""Interoperation with other tools: NIR graphs (:func:`export_nir`, :func:`import_nir`; the ``nir`` extra)."""

from iirsnn.interop.nir_export import export_nir
from iirsnn.interop.nir_import import import_nir

__all__ = ["export_nir", "import_nir"]
