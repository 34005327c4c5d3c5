/**
 * Streams a user can hold before the container exists: `spawn()` returns its `Sandbox` at once
 * (as `child_process.spawn` does) while the image is pulled and the container launched, so its
 * `stdin`/`stdout`/`stderr` are handed their pipe ends later.
 *
 * Both forward back-pressure instead of buffering: the readable side reads its pipe only when
 * its own reader asks for more, and the writable side completes a write only once the pipe took
 * it. What Node holds per stream is therefore bounded by the two streams' high-water marks,
 * whatever the container writes or refuses to read; the rest waits in the kernel's pipe buffer,
 * and a container writing to a full pipe blocks.
 * @module
 */
import { Readable, Writable } from 'node:stream';

/** A container's output stream, connected to its pipe (or terminal) once that exists. */
export class LateReadable extends Readable {
  #source: Readable | null = null;
  #attached = false;
  #wanted = false;
  #ended = false;

  /**
   * Connects the pipe end. `null` (no process, or the launch failed) ends the stream empty;
   * `tail` is pushed before the end (a launch's "executable file not found" message). Only the
   * first call counts.
   */
  attach(source: Readable | null, tail?: Buffer): void {
    if (this.#attached) return;
    this.#attached = true;
    if (this.destroyed) {
      source?.destroy();
      return;
    }
    if (!source) {
      if (tail) this.push(tail);
      this.#end();
      return;
    }
    this.#source = source;
    // Paused before the 'data' listener, or adding it would start the flow regardless of our reader.
    source.pause();
    source.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) source.pause();
    });
    source.on('end', () => this.#end());
    // A terminal's master reads EIO once the last slave fd closes: its end of file. A pipe read
    // has no other failure a reader could act on, and an 'error' on a stream the caller does
    // not listen to would throw in their process.
    source.on('error', () => this.#end());
    source.on('close', () => this.#end());
    if (this.#wanted) source.resume();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.push(null);
  }

  override _read(): void {
    this.#wanted = true;
    this.#source?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Closing our read end is what makes the container's next write fail with EPIPE.
    this.#source?.destroy();
    callback(error);
  }
}

interface PendingWrite {
  chunk: Buffer;
  callback: (error?: Error | null) => void;
}

/** A container's stdin, connected to its pipe (or terminal) once that exists. */
export class LateWritable extends Writable {
  #sink: Writable | null = null;
  #attached = false;
  /** Whether ending this stream may end the sink: not for a terminal, which is also stdout. */
  #ownsSink = true;
  #pending: PendingWrite | null = null;
  #pendingFinal: ((error?: Error | null) => void) | null = null;

  /**
   * Connects the pipe end; `null` when the process has no stdin to write to, which closes
   * this stream. `ownsSink: false` for a terminal shared with stdout: ending stdin leaves it open.
   * Only the first call counts.
   */
  attach(sink: Writable | null, options: { ownsSink: boolean } = { ownsSink: true }): void {
    if (this.#attached) return;
    this.#attached = true;
    if (this.destroyed) {
      if (options.ownsSink) sink?.destroy();
      return;
    }
    if (!sink) {
      this.close();
      return;
    }
    this.#sink = sink;
    this.#ownsSink = options.ownsSink;
    // EPIPE (the container closed its stdin or exited): nothing will read what is written now.
    // Closing quietly stops a pipe() into us; an 'error' nobody listens to would throw.
    sink.on('error', () => this.close());
    sink.on('close', () => this.close());
    const pending = this.#pending;
    this.#pending = null;
    if (pending) this.#forward(pending.chunk, pending.callback);
    const final = this.#pendingFinal;
    this.#pendingFinal = null;
    if (final) this._final(final);
  }

  /** Destroys this stream without an error: writes from now on fail through their callbacks only. */
  close(): void {
    if (!this.destroyed) this.destroy();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#sink) this.#pending = { chunk, callback };
    else this.#forward(chunk, callback);
  }

  #forward(chunk: Buffer, callback: (error?: Error | null) => void): void {
    // Completes once the pipe took the bytes: until then Writable buffers at most its
    // high-water mark and write() returns false.
    this.#sink!.write(chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#sink) {
      this.#pendingFinal = callback;
      return;
    }
    if (this.#ownsSink) this.#sink.end(() => callback());
    else callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // After a normal finish the sink was ended and flushes on its own; destroying it then could
    // drop bytes still on their way. Otherwise (a hang-up, the exit) it is closed now.
    if (this.#ownsSink && !this.writableFinished) this.#sink?.destroy();
    this.#pending?.callback();
    this.#pending = null;
    this.#pendingFinal?.();
    this.#pendingFinal = null;
    callback(error);
  }
}
