"""The guest of the componentize-py test component (world ``app`` of wit/world.wit).

componentize-py's bindings (``wit_world``) are generated when the component is built; the
exported interface ``api`` is the class ``Api`` here, its resource ``counter`` the class
``Counter`` of the module named after the interface (api.py).
"""

import wit_world
from componentize_py_types import Err
from wit_world.exports.api import Access, Color, Point, Shape, Shape_Circle, Shape_Empty, Shape_Rectangle
from wit_world.imports import host

_NEXT_COLOR = {Color.RED: Color.GREEN, Color.GREEN: Color.LIGHT_BLUE, Color.LIGHT_BLUE: Color.RED}


class Api(wit_world.exports.Api):
    def move_point(self, p: Point, dx: int, dy: int) -> Point:
        return Point(x=p.x + dx, y=p.y + dy)

    def area(self, s: Shape) -> float:
        if isinstance(s, Shape_Circle):
            return 3.0 * s.value * s.value
        if isinstance(s, Shape_Rectangle):
            return float(s.value.x * s.value.y)
        assert isinstance(s, Shape_Empty)
        return 0.0

    def next_color(self, c: Color) -> Color:
        return _NEXT_COLOR[c]

    def without_write(self, a: Access) -> Access:
        return a & ~Access.WRITE

    def parse_number(self, text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise Err(f"not a number: {text!r}")

    def require_positive(self, n: int) -> None:
        if n <= 0:
            raise Err(f"{n} is not positive")

    def greet(self) -> str:
        return f"Hello, {host.get_name()}, from componentize-py!"

    def sensor(self, key: str) -> host.Reading:
        reading = host.read_sensor(key)  # the host's Err(...) propagates as the guest's own error
        return host.Reading(label=reading.label.upper(), value=reading.value * 2)
