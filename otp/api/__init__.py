"""The JSON API: DRF views, serializers, the parser, the permission, the error answers and the schema."""
