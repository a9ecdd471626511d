//! A seeded xorshift generator for property tests: the same seed, the same cases, every run.

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.next() % v.len() as u64) as usize]
    }

    pub fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    /// 1 to `n` pieces, joined.
    pub fn text(&mut self, pieces: &[&str], n: usize) -> String {
        (0..1 + (self.next() as usize) % n)
            .map(|_| *self.pick(pieces))
            .collect()
    }
}
