import wasmpy
import shapes  # shapes.wasm, a component; its canvas import comes from example_shapes/canvas.py

geometry = shapes.geometry  # the exported interface example:shapes/geometry@0.1.0
size = geometry.Size(width=3.0, height=4.0)  # WIT records are dataclasses
print(geometry.scale(size, 0.5))

for shape in (geometry.Shape_Circle(1.0), geometry.Shape_Rectangle(size), geometry.Shape_Circle(-1.0)):
    match shape:  # a variant is one dataclass per case
        case geometry.Shape_Circle(radius):
            print(f"circle of radius {radius}: area {geometry.area(shape)}")
        case geometry.Shape_Rectangle(geometry.Size(width, height)):
            print(f"{width} x {height} rectangle: area {geometry.area(shape)}")
    try:
        geometry.draw(shape)  # result<_, string>: returns None, or raises wasmpy.Err
    except wasmpy.Err as error:
        print("not drawn:", error.value)

print("drawn:", shapes.drawn())
