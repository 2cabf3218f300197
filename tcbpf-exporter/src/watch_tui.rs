//! The full-screen form of `map watch`: crossterm's alternate screen and raw
//! mode, one table per map, redrawn every interval; `q`, Esc or Ctrl-C (and
//! SIGINT/SIGTERM) end it. When the tables are taller than the screen it
//! scrolls (arrows, j/k, PgUp/PgDn, Home/End, redrawn at once from the last
//! read) and its last line says how many rows are hidden above and below.
//! A guard restores the terminal on every way out, errors included. Reading
//! maps and computing rates is `watch`'s job.

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
    let term = |e: std::io::Error| Fail::other(format!("terminal: {e}"));
    let mut n = 0u64;
    let mut view = View::default();
    loop {
        let fs = frames(o)?;
        draw(&fs, o, &mut view).map_err(term)?;
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
            if event::poll(wait).map_err(term)? {
                match event::read().map_err(term)? {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        if ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                            return Ok(());
                        }
                        if view.scroll(k.code) {
                            draw(&fs, o, &mut view).map_err(term)?;
                        }
                    }
                    Event::Resize(..) => draw(&fs, o, &mut view).map_err(term)?,
                    _ => {}
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

/// Where the screen is scrolled to: the first body line shown (clamped at
/// each draw) and how many body lines the last draw showed (a page).
#[derive(Debug, Default)]
struct View {
    top: usize,
    page: usize,
}

impl View {
    /// Moves by a scroll key; false for any other key.
    fn scroll(&mut self, key: KeyCode) -> bool {
        let page = self.page.max(1);
        self.top = match key {
            KeyCode::Up | KeyCode::Char('k') => self.top.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => self.top.saturating_add(1),
            KeyCode::PageUp => self.top.saturating_sub(page),
            KeyCode::PageDown | KeyCode::Char(' ') => self.top.saturating_add(page),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => usize::MAX,
            _ => return false,
        };
        true
    }
}

/// The lines a screen `height` rows tall shows of `all` (a header, then the
/// body), scrolled so the body starts at line `top`: everything when it
/// fits; else the header, a page of the body and a last line saying how
/// many rows are hidden above and below. `top` is clamped so the last page
/// is full. Returns the lines, the clamped top and the page's height.
pub fn window(
    all: &[String],
    top: usize,
    height: usize,
    width: usize,
) -> (Vec<String>, usize, usize) {
    if all.len() <= height || height < 3 {
        let shown: Vec<String> = all.iter().take(height).cloned().collect();
        let page = shown.len().saturating_sub(1);
        return (shown, 0, page);
    }
    let body = &all[1..];
    let page = height - 2;
    let top = top.min(body.len() - page);
    let (above, below) = (top, body.len() - top - page);
    let rows = |n: usize| format!("{n} row{}", if n == 1 { "" } else { "s" });
    let footer = match (above, below) {
        (0, b) => format!("… {} below   j/↓ PgDn End: scroll", rows(b)),
        (a, 0) => format!("… {} above   k/↑ PgUp Home: scroll", rows(a)),
        (a, b) => format!(
            "… {} above, {} below   j/k ↑/↓ PgUp/PgDn Home/End: scroll",
            rows(a),
            rows(b)
        ),
    };
    let mut shown = vec![all[0].clone()];
    shown.extend(body[top..top + page].iter().cloned());
    shown.push(footer.chars().take(width).collect());
    (shown, top, page)
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

fn draw(frames: &[Frame], o: &Options, view: &mut View) -> std::io::Result<()> {
    let (w, h) = terminal::size()?;
    let all = lines(frames, o, &clock(), w as usize);
    let (shown, top, page) = window(&all, view.top, h as usize, w as usize);
    (view.top, view.page) = (top, page);
    let mut out = std::io::stdout().lock();
    queue!(out, terminal::Clear(terminal::ClearType::All))?;
    let last = shown.len() - 1;
    for (row, line) in shown.iter().enumerate() {
        queue!(out, cursor::MoveTo(0, row as u16))?;
        if row == 0 || (row == last && shown.len() < all.len()) {
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
            key_ints: vec![true],
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

    #[test]
    fn a_screen_too_short_shows_a_page_and_counts_the_hidden_rows() {
        let all: Vec<String> = (0..20).map(|i| format!("line {i}")).collect();
        // Everything fits: no footer.
        let (shown, top, page) = window(&all, 5, 20, 80);
        assert_eq!((shown.len(), top, page), (20, 0, 19));
        // 19 body lines, 8 a page.
        let (shown, top, page) = window(&all, 0, 10, 80);
        assert_eq!((top, page), (0, 8));
        assert_eq!(shown[0], "line 0");
        assert_eq!(shown[1], "line 1");
        assert_eq!(shown[8], "line 8");
        assert_eq!(shown[9], "… 11 rows below   j/↓ PgDn End: scroll");
        let (shown, top, _) = window(&all, 10, 10, 80);
        assert_eq!(top, 10);
        assert_eq!(shown[1], "line 11");
        assert_eq!(
            shown[9],
            "… 10 rows above, 1 row below   j/k ↑/↓ PgUp/PgDn Home/End: scroll"
        );
        // Past the end: the last full page.
        let (shown, top, _) = window(&all, usize::MAX, 10, 80);
        assert_eq!(top, 11);
        assert_eq!(shown[8], "line 19");
        assert_eq!(shown[9], "… 11 rows above   k/↑ PgUp Home: scroll");
        // Keys move the view; the draw clamps it.
        let mut v = View { top: 3, page: 8 };
        assert!(v.scroll(KeyCode::PageDown) && v.top == 11);
        assert!(v.scroll(KeyCode::Char('k')) && v.top == 10);
        assert!(v.scroll(KeyCode::Home) && v.top == 0);
        assert!(v.scroll(KeyCode::Up) && v.top == 0);
        assert!(v.scroll(KeyCode::End) && v.top == usize::MAX);
        assert!(!v.scroll(KeyCode::Char('x')));
    }
}
