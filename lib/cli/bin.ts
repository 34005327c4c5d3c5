/**
 * The `berth` executable (package.json `bin`): runs the CLI on this process's arguments and
 * streams, then exits with its code. Exiting explicitly is the program's right, not the
 * library's: a finished verb may leave the runtime's watchers armed, and on Linux stdout and
 * stderr writes to pipes, files and terminals are synchronous, so nothing written is lost.
 * @module
 */
import { main } from './main.js';

const code = await main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
process.exit(code);
