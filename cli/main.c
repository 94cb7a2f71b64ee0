/*
 * madoguchi: one binary, one subcommand per operator task.
 */
#include "md_err.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "madoguchi " MD_VERSION "\n");
    return 0;
}
