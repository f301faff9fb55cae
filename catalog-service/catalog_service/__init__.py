"""catalog-service: public, paginated and filterable reads of the imported catalog."""
