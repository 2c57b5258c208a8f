import wasmpy
import demo

demo.test()
