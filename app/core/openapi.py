"""OpenAPI declarations Litestar cannot infer from a handler's signature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins import StructSchemaPlugin  # Litestar's own, extended below
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition


def produces(*media_types: str) -> type[Operation]:
    """An `operation_class` documenting a success body in each of these media types: for handlers that
    answer in the format asked for (`?format=png|pdf|zpl`), where Litestar documents one."""

    @dataclass
    class Produces(Operation):
        def __post_init__(self) -> None:
            for status, response in (self.responses or {}).items():
                if status.startswith("2") and isinstance(response, OpenAPIResponse) and response.content:
                    response.content = {
                        media_type: OpenAPIMediaType(schema=_body_schema(media_type)) for media_type in media_types
                    }

    return Produces


def consumes(*media_types: str) -> type[Operation]:
    """An `operation_class` documenting a raw request body (read from the request, not a typed `data`
    parameter, so Litestar documents none) in each of these media types."""

    @dataclass
    class Consumes(Operation):
        def __post_init__(self) -> None:
            content = {media_type: OpenAPIMediaType(schema=_body_schema(media_type)) for media_type in media_types}
            self.request_body = RequestBody(content=content, required=True)

    return Consumes


def _body_schema(media_type: str) -> Schema:
    if media_type == "application/json" or media_type.endswith("+json"):
        return Schema()  # any JSON value
    if media_type.startswith("text/"):
        return Schema(type=OpenAPIType.STRING)
    return Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """msgspec Structs that refuse unknown fields (`forbid_unknown_fields=True`) say so in the OpenAPI
    (`additionalProperties: false`); Litestar's own plugin leaves it out, so clients and the fuzzing
    took a 400 for a body the schema allowed."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        created: Schema | Reference = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema = (
                created
                if isinstance(created, Schema)
                else schema_creator.schema_registry.from_reference(created).schema
            )
            schema.additional_properties = False
        return created  # type: ignore[return-value]
