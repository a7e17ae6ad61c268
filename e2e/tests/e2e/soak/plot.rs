//! The samples as one image (gnuplot, installed by scripts/setup.sh):
//! memory, requests per second and errors over time, faults marked.

use super::samples::Event;
use std::path::Path;
use std::process::Command;

/// Writes `soak.png` in `dir` from `samples.csv` and `events.csv` there.
pub fn draw(dir: &Path, events: &[Event]) -> Result<(), String> {
    let mut marks = String::new();
    for (i, e) in events.iter().enumerate() {
        let color = match e.what {
            "push" => "#2a9d8f",
            "push refused" => "#e9c46a",
            "keycloak stopped" | "keycloak ready" => "#e76f51",
            _ => "#8d99ae",
        };
        marks.push_str(&format!(
            "set arrow {} from {at},graph 0 to {at},graph 1 nohead lc rgb '{color}' dt 2\n",
            i + 1,
            at = e.at
        ));
    }
    let script = format!(
        r#"set terminal pngcairo size 1200,900 font ',10'
set output 'soak.png'
set datafile separator ','
set key autotitle columnhead top left
set grid
set xlabel 'seconds'
{marks}set multiplot layout 3,1 title 'azp-bridge soak (dashed: push green, refused push yellow, Keycloak stop/ready red, upstream resets grey)'
set ylabel 'Envoy RSS, MiB'
set y2label 'VM linear memory, MiB'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot 'samples.csv' using 1:($2/1024) with linespoints title 'Envoy RSS', '' using 1:($3/1048576) axes x1y2 with linespoints title 'VM linear memory (all VMs, right)'
unset y2label
unset y2tics
set ytics mirror
set ylabel 'requests/s'
plot 'samples.csv' using 1:5 with linespoints title 'answered'
set ylabel 'per 10 s'
plot 'samples.csv' using 1:6 with linespoints title 'unexpected answers', '' using 1:7 with linespoints title '5xx (faults)'
unset multiplot
"#
    );
    std::fs::write(dir.join("soak.gnuplot"), &script).map_err(|e| e.to_string())?;
    let status = Command::new("gnuplot")
        .arg("soak.gnuplot")
        .current_dir(dir)
        .status()
        .map_err(|e| format!("gnuplot: {e} (scripts/setup.sh installs it)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("gnuplot exited {status}"))
    }
}
