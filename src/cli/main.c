/* cgprof entry point: parse the subcommand and hand over. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "cgprof: under construction\n");
	return 2;
}
