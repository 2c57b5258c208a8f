import wasmpy
import gcd

print("gcd(27, 6) =", gcd.gcd(27, 6))
