/**
 * The `berth` executable (package.json `bin`): runs the CLI on this process's arguments and
 * streams, then exits with its code. `main` closes the runtime it opened; exiting explicitly
 * (the program's right, not the library's) still ends the process when a stream of the
 * terminal (a paused stdin) would keep it waiting. On Linux, writes to stdout and stderr as
 * pipes, files and terminals are synchronous, so nothing written is lost.
 * @module
 */
import { main } from './main.js';

const code = await main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
process.exit(code);
