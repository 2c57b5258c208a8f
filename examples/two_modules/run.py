import wasmpy
import two

print("answer() returned", two.ask())
