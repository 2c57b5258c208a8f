/* hello.c: the smallest WASI command. */
#include <stdio.h>

int main(void) {
    puts("Hello, WASI!");
    return 0;
}
