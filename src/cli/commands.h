/* Entry points of the subcommands that parse their own options (heap,
 * the only one; run, attach, dump, upload and config share cli_parse):
 * each takes argv from the subcommand name on and returns the process
 * exit status. */
#ifndef CGPROF_CLI_COMMANDS_H
#define CGPROF_CLI_COMMANDS_H

/* `cgprof heap [--format text|json] [--top N] PID` (argv[0] = "heap"). */
int cmd_heap(int argc, char **argv);

#endif
