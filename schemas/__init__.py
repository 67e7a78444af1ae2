"""The edXML XML Schemas, shipped inside the package as ``gateway.schemas``.

Nothing to import here: :mod:`gateway.edxml.schema` loads the ``.xsd`` files beside this one.
"""
