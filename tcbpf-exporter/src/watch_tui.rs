//! The full-screen form of `map watch`: crossterm's alternate screen and raw
//! mode, one table per map, redrawn every interval; `q`, Esc or Ctrl-C (and
//! SIGINT/SIGTERM) end it. A guard restores the terminal on every way out,
//! errors included. Reading maps and computing rates is `watch`'s job.

use crate::args::Fail;
use crate::watch::{key_string, rate_string, Frame, Options};
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::{cursor, queue, terminal};
use std::io::Write;
use std::time::{Duration, Instant};

/// Puts the terminal back as it was when dropped.
struct Screen;

impl Screen {
    fn enter() -> Result<Screen, Fail> {
        terminal::enable_raw_mode().map_err(|e| Fail::other(format!("terminal: {e}")))?;
        let screen = Screen;
        let mut out = std::io::stdout();
        crossterm::execute!(out, terminal::EnterAlternateScreen, cursor::Hide)
            .map_err(|e| Fail::other(format!("terminal: {e}")))?;
        Ok(screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = crossterm::execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

/// Runs the screen until a quit key, a signal, or `count` refreshes.
pub fn run(
    frames: &mut impl FnMut(&Options) -> Result<Vec<Frame>, Fail>,
    o: &Options,
) -> Result<(), Fail> {
    let _screen = Screen::enter()?;
    let interval = Duration::from_secs_f64(o.interval);
    let mut n = 0u64;
    loop {
        let fs = frames(o)?;
        draw(&fs, o).map_err(|e| Fail::other(format!("terminal: {e}")))?;
        n += 1;
        if o.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        let next = Instant::now() + interval;
        while Instant::now() < next {
            if tcbpf::sys::frontend::interrupted() {
                return Ok(());
            }
            let wait = (next - Instant::now()).min(Duration::from_millis(100));
            if event::poll(wait).map_err(|e| Fail::other(format!("terminal: {e}")))? {
                if let Event::Key(k) =
                    event::read().map_err(|e| Fail::other(format!("terminal: {e}")))?
                {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if k.kind != KeyEventKind::Release
                        && (ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc))
                    {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The lines of one screen (without terminal codes): a header, then per
/// map a title and a table. `width` cuts long lines.
pub fn lines(frames: &[Frame], o: &Options, clock: &str, width: usize) -> Vec<String> {
    let mut out = vec![format!(
        "tcbpf map watch   every {}s   {clock}   q: quit",
        o.interval
    )];
    for f in frames {
        out.push(String::new());
        out.push(format!(
            "map {} (id {}, {})   entries {}",
            f.name, f.id, f.kind, f.entries
        ));
        let mut head = vec!["KEY".to_string()];
        for field in &f.fields {
            let t = if field.is_empty() { "VALUE" } else { field };
            head.push(t.to_uppercase());
            head.push(format!("{}/s", t.to_uppercase()));
        }
        let mut table = vec![head];
        for r in &f.rows {
            let mut cells = vec![format!("{}{}", r.mark, key_string(&r.key))];
            for (v, rate) in r.values.iter().zip(&r.rates) {
                cells.push(v.to_string());
                cells.push(rate_string(*rate));
            }
            table.push(cells);
        }
        let cols = table[0].len();
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                table
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (i, row) in table.iter().enumerate() {
            let mut line = String::from(if i == 0 { "  " } else { " " });
            for (c, cell) in row.iter().enumerate() {
                if c == 0 {
                    let pad = widths[0] + if i == 0 { 0 } else { 1 };
                    line += &format!("{cell:<pad$}");
                } else {
                    line += &format!("  {cell:>w$}", w = widths[c]);
                }
            }
            out.push(line.chars().take(width).collect());
        }
    }
    out
}

fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "{:02}:{:02}:{:02} UTC",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

fn draw(frames: &[Frame], o: &Options) -> std::io::Result<()> {
    let (w, h) = terminal::size()?;
    let mut out = std::io::stdout().lock();
    queue!(out, terminal::Clear(terminal::ClearType::All))?;
    for (row, line) in lines(frames, o, &clock(), w as usize)
        .iter()
        .take(h as usize)
        .enumerate()
    {
        queue!(out, cursor::MoveTo(0, row as u16))?;
        if row == 0 {
            queue!(
                out,
                SetAttribute(Attribute::Reverse),
                Print(line),
                SetAttribute(Attribute::Reset)
            )?;
        } else {
            queue!(out, Print(line))?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::Shown;

    #[test]
    fn screen_lines_align_columns_and_mark_rows() {
        let f = Frame {
            name: "proto_stats".into(),
            id: 9,
            kind: "hash".into(),
            entries: 2,
            fields: vec!["packets".into()],
            rows: vec![
                Shown {
                    key: vec![("key".into(), "17".into())],
                    values: vec![1200],
                    rates: vec![Some(100.0)],
                    mark: ' ',
                },
                Shown {
                    key: vec![("key".into(), "1".into())],
                    values: vec![3],
                    rates: vec![None],
                    mark: '+',
                },
            ],
        };
        let o = Options {
            interval: 1.0,
            sort: None,
            top: None,
            count: None,
            key: None,
            value: None,
        };
        let l = lines(&[f], &o, "12:00:00 UTC", 200);
        assert_eq!(l[0], "tcbpf map watch   every 1s   12:00:00 UTC   q: quit");
        assert_eq!(l[2], "map proto_stats (id 9, hash)   entries 2");
        assert_eq!(l[3], "  KEY  PACKETS  PACKETS/s");
        assert_eq!(l[4], "  17      1200      100.0");
        assert_eq!(l[5], " +1          3          -");
    }
}
