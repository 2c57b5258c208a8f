/* exit3.c: says so on stderr and exits with status 3 (through proc_exit). */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    puts("about to exit");
    fputs("exit3: exiting with status 3\n", stderr);
    exit(3);
}
