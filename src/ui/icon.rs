//! dirsync's icon, drawn here so the window, the package and `assets/dirsync.png` (which a test
//! keeps equal to this drawing) show the same: on a blue rounded square, a directory tree (three
//! nodes, left) joined by an arrow to a cloud (right).

/// The icon as `size`×`size` RGBA pixels, row by row.
pub fn icon_rgba(size: u32) -> Vec<u8> {
    let s = size as f32;
    let mut pixels = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            // Four samples per pixel, for smooth edges.
            let mut color = [0.0_f32; 4];
            for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let sample = shade((x as f32 + dx) / s, (y as f32 + dy) / s);
                for (total, value) in color.iter_mut().zip(sample) {
                    *total += value / 4.0;
                }
            }
            let alpha = color[3];
            for value in &color[..3] {
                let straight = if alpha > 0.0 { value / alpha } else { 0.0 };
                pixels.push((straight * 255.0).round().clamp(0.0, 255.0) as u8);
            }
            pixels.push((alpha * 255.0).round().clamp(0.0, 255.0) as u8);
        }
    }
    pixels
}

const BLUE: [f32; 3] = [0.12, 0.38, 0.75];
const WHITE: [f32; 3] = [1.0, 1.0, 1.0];

/// The color at (u, v) in 0..1, premultiplied, with coverage in the last channel.
fn shade(u: f32, v: f32) -> [f32; 4] {
    if !in_rounded_square(u, v, 0.04, 0.18) {
        return [0.0; 4];
    }
    let white = in_tree(u, v) || in_arrow(u, v) || in_cloud(u, v);
    let color = if white { WHITE } else { BLUE };
    [color[0], color[1], color[2], 1.0]
}

fn in_rounded_square(u: f32, v: f32, margin: f32, radius: f32) -> bool {
    let (low, high) = (margin + radius, 1.0 - margin - radius);
    let dx = (low - u).max(u - high).max(0.0);
    let dy = (low - v).max(v - high).max(0.0);
    u >= margin
        && u <= 1.0 - margin
        && v >= margin
        && v <= 1.0 - margin
        && dx * dx + dy * dy <= radius * radius
}

fn in_circle(u: f32, v: f32, cx: f32, cy: f32, r: f32) -> bool {
    (u - cx).powi(2) + (v - cy).powi(2) <= r * r
}

fn in_segment(u: f32, v: f32, (ax, ay): (f32, f32), (bx, by): (f32, f32), width: f32) -> bool {
    let (dx, dy) = (bx - ax, by - ay);
    let t = (((u - ax) * dx + (v - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
    let (px, py) = (ax + t * dx, ay + t * dy);
    (u - px).powi(2) + (v - py).powi(2) <= (width / 2.0).powi(2)
}

/// A root with two children, joined by lines.
fn in_tree(u: f32, v: f32) -> bool {
    let root = (0.24, 0.30);
    let children = [(0.16, 0.70), (0.34, 0.70)];
    in_circle(u, v, root.0, root.1, 0.07)
        || children
            .iter()
            .any(|&(x, y)| in_circle(u, v, x, y, 0.065) || in_segment(u, v, root, (x, y), 0.045))
}

fn in_arrow(u: f32, v: f32) -> bool {
    in_segment(u, v, (0.44, 0.52), (0.60, 0.52), 0.05)
        || in_segment(u, v, (0.60, 0.52), (0.54, 0.45), 0.05)
        || in_segment(u, v, (0.60, 0.52), (0.54, 0.59), 0.05)
}

fn in_cloud(u: f32, v: f32) -> bool {
    in_circle(u, v, 0.74, 0.50, 0.09)
        || in_circle(u, v, 0.83, 0.56, 0.07)
        || in_circle(u, v, 0.68, 0.57, 0.065)
        || ((0.68..=0.83).contains(&u) && (0.52..=0.635).contains(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_square_rgba_with_transparent_corners() {
        let pixels = icon_rgba(64);
        assert_eq!(pixels.len(), 64 * 64 * 4);
        assert_eq!(pixels[3], 0, "the corner is transparent");
        let center = ((32 * 64 + 32) * 4) as usize;
        assert_eq!(pixels[center + 3], 255, "the middle is opaque");
    }
}
