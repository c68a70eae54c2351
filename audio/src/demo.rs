//! Demo audio for `beatstream dev`: a short, pleasant, never silent tune, the same for the same seed.

use crate::wav;

/// The demo's sample rate.
pub const SAMPLE_RATE: u32 = 44_100;

/// Notes per second.
const NOTES_PER_SECOND: u32 = 2;

/// A pentatonic scale over two octaves (A minor), in Hz: any sequence of its notes sounds agreeable.
const SCALE: [f64; 10] =
    [220.0, 261.63, 293.66, 329.63, 392.0, 440.0, 523.25, 587.33, 659.25, 783.99];

/// A WAV file (16-bit stereo at 44.1 kHz) of `seconds` seconds: a melody of half-second notes chosen by `seed`
/// over a held root note, each note a sine with a little triangle, an attack and a decay, panned a little.
pub fn track(seed: u64, seconds: u32) -> Vec<u8> {
    wav::encode(SAMPLE_RATE, 2, &pcm(seed, seconds))
}

/// The samples of [`track`], interleaved stereo.
pub fn pcm(seed: u64, seconds: u32) -> Vec<i16> {
    let mut rng = XorShift(seed ^ 0x9e37_79b9_7f4a_7c15 | 1);
    let note_frames = SAMPLE_RATE / NOTES_PER_SECOND;
    let notes: Vec<(f64, f64)> = (0..seconds * NOTES_PER_SECOND)
        .map(|_| {
            let pitch = SCALE[(rng.next() % SCALE.len() as u64) as usize];
            let pan = (rng.next() % 1000) as f64 / 1000.0 * 0.6 + 0.2;
            (pitch, pan)
        })
        .collect();
    let root = SCALE[(seed % 3) as usize] / 2.0;
    let frames = seconds * SAMPLE_RATE;
    let mut out = Vec::with_capacity(frames as usize * 2);
    for frame in 0..frames {
        let t = f64::from(frame) / f64::from(SAMPLE_RATE);
        let (pitch, pan) = notes[(frame / note_frames) as usize];
        let in_note = f64::from(frame % note_frames) / f64::from(SAMPLE_RATE);
        // 10 ms attack, an exponential decay, and a 10 ms release before the next note: a pluck that never clicks.
        let note_seconds = 1.0 / f64::from(NOTES_PER_SECOND);
        let envelope =
            (in_note / 0.01).min((note_seconds - in_note) / 0.01).min(1.0) * (-in_note * 5.0).exp();
        let phase = (t * pitch).fract();
        let triangle = 4.0 * (phase - 0.5).abs() - 1.0;
        let voice = envelope * (0.8 * (std::f64::consts::TAU * phase).sin() + 0.2 * triangle);
        let drone = 0.15 * (std::f64::consts::TAU * root * t).sin();
        // Fade the whole track in and out over 20 ms so it starts and ends on silence.
        let edge = (t / 0.02).min((f64::from(seconds) - t) / 0.02).clamp(0.0, 1.0);
        let left = edge * (voice * (1.0 - pan) + drone) * 0.5;
        let right = edge * (voice * pan + drone) * 0.5;
        out.push((left * 32_767.0).round() as i16);
        out.push((right * 32_767.0).round() as i16);
    }
    out
}

/// A small deterministic generator; the demo needs variety, not randomness.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_wav_of_the_asked_length_that_is_not_silent() {
        let bytes = track(7, 3);
        let pcm = wav::decode(&bytes).unwrap();
        assert_eq!((pcm.sample_rate, pcm.channels), (SAMPLE_RATE, 2));
        assert_eq!(pcm.frames(), 3 * SAMPLE_RATE as usize);
        let loud = pcm.samples.iter().filter(|s| s.unsigned_abs() > 1000).count();
        assert!(loud > pcm.samples.len() / 4, "only {loud} loud samples");
        // Every second has sound, not only the first.
        for second in pcm.samples.chunks(2 * SAMPLE_RATE as usize) {
            assert!(second.iter().any(|s| s.unsigned_abs() > 3000));
        }
    }

    #[test]
    fn same_seed_same_track_other_seed_other_track() {
        assert_eq!(track(1, 1), track(1, 1));
        assert_ne!(track(1, 1), track(2, 1));
    }
}
