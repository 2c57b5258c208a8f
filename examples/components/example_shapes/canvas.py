"""The host's side of interface example:shapes/canvas (shapes.wit): the import hook gives a
component's import of `ns:pkg/iface` from the Python module `ns_pkg.iface`."""


def circle(radius: float) -> None:
    print(f"canvas: a circle of radius {radius}")


def rectangle(width: float, height: float) -> None:
    print(f"canvas: a {width} x {height} rectangle")
