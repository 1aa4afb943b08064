"""The JSON API for integrations (/api/v1/): tokens, the case and feedback endpoints, and
the OpenAPI document that describes every endpoint, including search's and recommend's."""
