//! A small CPU renderer for egui_kittest's image snapshots: egui's triangles, rasterized with
//! their texture and vertex colours and premultiplied-alpha blending, as egui's own shader does in
//! gamma space. It needs no GPU, so snapshots are the same on every machine.

use std::collections::HashMap;

use egui::epaint::{ClippedPrimitive, Primitive, Vertex};
use egui::{Color32, TextureId, TexturesDelta};
use egui_kittest::TestRenderer;

#[derive(Default)]
pub struct SoftwareRenderer {
    textures: HashMap<TextureId, Texture>,
}

struct Texture {
    size: [usize; 2],
    pixels: Vec<Color32>,
}

impl TestRenderer for SoftwareRenderer {
    fn handle_delta(&mut self, delta: &mut TexturesDelta) {
        let set: Vec<_> = delta
            .set
            .drain()
            .flat_map(|(id, deltas)| deltas.into_iter().map(move |one| (id, one)))
            .collect();
        for (id, image_delta) in &set {
            let egui::ImageData::Color(image) = &image_delta.image;
            match image_delta.pos {
                None => {
                    self.textures.insert(
                        *id,
                        Texture {
                            size: image.size,
                            pixels: image.pixels.clone(),
                        },
                    );
                }
                Some([x0, y0]) => {
                    let Some(texture) = self.textures.get_mut(id) else {
                        continue;
                    };
                    for y in 0..image.size[1] {
                        for x in 0..image.size[0] {
                            let (tx, ty) = (x0 + x, y0 + y);
                            if tx < texture.size[0] && ty < texture.size[1] {
                                texture.pixels[ty * texture.size[0] + tx] =
                                    image.pixels[y * image.size[0] + x];
                            }
                        }
                    }
                }
            }
        }
        for id in delta.free.drain() {
            self.textures.remove(&id);
        }
    }

    fn render(
        &mut self,
        ctx: &egui::Context,
        output: &egui::FullOutput,
    ) -> Result<image::RgbaImage, String> {
        let pixels_per_point = output.pixels_per_point;
        let screen = ctx.viewport_rect();
        let width = (screen.width() * pixels_per_point).round() as usize;
        let height = (screen.height() * pixels_per_point).round() as usize;
        let mut target = vec![[0.0_f32; 4]; width * height];
        let primitives = ctx.tessellate(output.shapes.clone(), pixels_per_point);
        for ClippedPrimitive {
            clip_rect,
            primitive,
        } in &primitives
        {
            let Primitive::Mesh(mesh) = primitive else {
                continue;
            };
            let texture = self
                .textures
                .get(&mesh.texture_id)
                .ok_or_else(|| format!("unknown texture {:?}", mesh.texture_id))?;
            let clip = [
                (clip_rect.min.x * pixels_per_point).max(0.0),
                (clip_rect.min.y * pixels_per_point).max(0.0),
                (clip_rect.max.x * pixels_per_point).min(width as f32),
                (clip_rect.max.y * pixels_per_point).min(height as f32),
            ];
            for triangle in mesh.indices.chunks_exact(3) {
                let corners = [
                    &mesh.vertices[triangle[0] as usize],
                    &mesh.vertices[triangle[1] as usize],
                    &mesh.vertices[triangle[2] as usize],
                ];
                draw_triangle(&mut target, width, clip, pixels_per_point, corners, texture);
            }
        }
        let mut image = image::RgbaImage::new(width as u32, height as u32);
        for (pixel, colour) in image.pixels_mut().zip(&target) {
            let alpha = colour[3].clamp(0.0, 1.0);
            // Un-premultiply for the PNG.
            let channel = |value: f32| {
                if alpha > 0.0 {
                    ((value / alpha).clamp(0.0, 1.0) * 255.0).round() as u8
                } else {
                    0
                }
            };
            *pixel = image::Rgba([
                channel(colour[0]),
                channel(colour[1]),
                channel(colour[2]),
                (alpha * 255.0).round() as u8,
            ]);
        }
        Ok(image)
    }
}

fn draw_triangle(
    target: &mut [[f32; 4]],
    width: usize,
    clip: [f32; 4],
    pixels_per_point: f32,
    corners: [&Vertex; 3],
    texture: &Texture,
) {
    let p = corners.map(|vertex| {
        (
            vertex.pos.x * pixels_per_point,
            vertex.pos.y * pixels_per_point,
        )
    });
    let area = (p[1].0 - p[0].0) * (p[2].1 - p[0].1) - (p[2].0 - p[0].0) * (p[1].1 - p[0].1);
    if area.abs() < f32::EPSILON {
        return;
    }
    let min_x = p
        .iter()
        .map(|c| c.0)
        .fold(f32::MAX, f32::min)
        .max(clip[0])
        .floor() as i64;
    let max_x = p
        .iter()
        .map(|c| c.0)
        .fold(f32::MIN, f32::max)
        .min(clip[2])
        .ceil() as i64;
    let min_y = p
        .iter()
        .map(|c| c.1)
        .fold(f32::MAX, f32::min)
        .max(clip[1])
        .floor() as i64;
    let max_y = p
        .iter()
        .map(|c| c.1)
        .fold(f32::MIN, f32::max)
        .min(clip[3])
        .ceil() as i64;
    let colours = corners.map(|vertex| {
        let [r, g, b, a] = vertex.color.to_array();
        [r, g, b, a].map(|channel| f32::from(channel) / 255.0)
    });
    for y in min_y.max(0)..max_y {
        let py = y as f32 + 0.5;
        if py < clip[1] || py >= clip[3] {
            continue;
        }
        for x in min_x.max(0)..max_x {
            let px = x as f32 + 0.5;
            if px < clip[0] || px >= clip[2] || x as usize >= width {
                continue;
            }
            let edge =
                |a: (f32, f32), b: (f32, f32)| (b.0 - a.0) * (py - a.1) - (b.1 - a.1) * (px - a.0);
            let w0 = edge(p[1], p[2]) / area;
            let w1 = edge(p[2], p[0]) / area;
            let w2 = edge(p[0], p[1]) / area;
            if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                continue;
            }
            let u = w0 * corners[0].uv.x + w1 * corners[1].uv.x + w2 * corners[2].uv.x;
            let v = w0 * corners[0].uv.y + w1 * corners[1].uv.y + w2 * corners[2].uv.y;
            let texel = sample(texture, u, v);
            let source: [f32; 4] = std::array::from_fn(|channel| {
                let vertex =
                    w0 * colours[0][channel] + w1 * colours[1][channel] + w2 * colours[2][channel];
                vertex * texel[channel]
            });
            let destination = &mut target[y as usize * width + x as usize];
            for channel in 0..4 {
                destination[channel] = source[channel] + destination[channel] * (1.0 - source[3]);
            }
        }
    }
}

/// The texel nearest (u, v), premultiplied, 0..1.
fn sample(texture: &Texture, u: f32, v: f32) -> [f32; 4] {
    let x = ((u * texture.size[0] as f32) as usize).min(texture.size[0].saturating_sub(1));
    let y = ((v * texture.size[1] as f32) as usize).min(texture.size[1].saturating_sub(1));
    let [r, g, b, a] = texture.pixels[y * texture.size[0] + x].to_array();
    [r, g, b, a].map(|channel| f32::from(channel) / 255.0)
}
