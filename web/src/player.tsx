// Terminal player for SSH session recordings (asciicast v2), on xterm.js: play/pause, seek,
// speed. Seeking replays the output up to the chosen time into a reset terminal.
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { useEffect, useRef, useState } from "react";

interface Cast {
  readonly width: number;
  readonly height: number;
  readonly events: readonly (readonly [number, string])[];
  readonly duration: number;
}

export function parseCast(text: string): Cast {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const header = JSON.parse(lines[0] ?? "{}") as { width?: unknown; height?: unknown };
  const events: (readonly [number, string])[] = [];
  for (const line of lines.slice(1)) {
    const e = JSON.parse(line) as unknown;
    if (Array.isArray(e) && typeof e[0] === "number" && e[1] === "o" && typeof e[2] === "string") events.push([e[0], e[2]]);
  }
  return {
    // A client without a terminal of its own (ssh -tt from a script) reports 0×0.
    width: typeof header.width === "number" && header.width > 0 ? Math.min(header.width, 500) : 80,
    height: typeof header.height === "number" && header.height > 0 ? Math.min(header.height, 200) : 24,
    events,
    duration: events.length === 0 ? 0 : (events[events.length - 1]?.[0] ?? 0),
  };
}

export function TerminalPlayer({ castText }: { castText: string }) {
  const host = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const cast = useRef<Cast>(parseCast(castText));
  const [pos, setPos] = useState(0); // seconds
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const index = useRef(0);

  useEffect(() => {
    const c = parseCast(castText);
    cast.current = c;
    const t = new Terminal({ cols: c.width, rows: c.height, convertEol: false, disableStdin: true, fontSize: 13, scrollback: 5000 });
    if (host.current !== null) t.open(host.current);
    term.current = t;
    index.current = 0;
    setPos(0);
    return () => t.dispose();
  }, [castText]);

  const seek = (to: number): void => {
    const t = term.current;
    if (t === null) return;
    t.reset();
    let i = 0;
    let out = "";
    const ev = cast.current.events;
    while (i < ev.length && (ev[i]?.[0] ?? 0) <= to) {
      out += ev[i]?.[1] ?? "";
      i++;
    }
    t.write(out);
    index.current = i;
    setPos(to);
  };

  useEffect(() => {
    if (!playing) return;
    const started = performance.now();
    const from = pos;
    let handle = 0;
    const step = (): void => {
      const now = from + ((performance.now() - started) / 1000) * speed;
      const ev = cast.current.events;
      let out = "";
      while (index.current < ev.length && (ev[index.current]?.[0] ?? 0) <= now) {
        out += ev[index.current]?.[1] ?? "";
        index.current++;
      }
      if (out !== "") term.current?.write(out);
      setPos(Math.min(now, cast.current.duration));
      if (index.current >= ev.length) {
        setPlaying(false);
        return;
      }
      handle = window.setTimeout(step, 30);
    };
    step();
    return () => window.clearTimeout(handle);
    // `pos` is read once, as the start point of this play run.
  }, [playing, speed]);

  const duration = cast.current.duration;
  return (
    <div className="player">
      <div className="player-controls">
        <button
          type="button"
          id="play"
          onClick={() => {
            if (!playing && index.current >= cast.current.events.length) seek(0);
            setPlaying(!playing);
          }}
        >
          {playing ? "Pause" : "Play"}
        </button>
        <input
          id="seek"
          aria-label="Position"
          type="range"
          min={0}
          max={Math.max(duration, 0.001)}
          step={0.01}
          value={pos}
          onChange={(e) => {
            setPlaying(false);
            seek(Number(e.target.value));
          }}
        />
        <span className="mono" id="position">
          {pos.toFixed(1)}s / {duration.toFixed(1)}s
        </span>
        <label className="inline">
          Speed{" "}
          <select id="speed" value={speed} onChange={(e) => setSpeed(Number(e.target.value))}>
            {[0.5, 1, 2, 4, 8].map((s) => (
              <option key={s} value={s}>
                {s}×
              </option>
            ))}
          </select>
        </label>
        <button type="button" id="to-end" onClick={() => { setPlaying(false); seek(duration); }}>
          End
        </button>
      </div>
      <div className="terminal" ref={host} id="terminal" />
    </div>
  );
}
