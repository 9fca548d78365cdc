"""General MIDI instruments the synthesizer uses, each filed under a MoisesDB stem category."""

from __future__ import annotations

from dataclasses import dataclass

from stemlab.taxonomy import check_stem


@dataclass(frozen=True)
class Instrument:
    program: int  # GM program (0-based); for drum kits the bank-128 preset
    name: str
    category: str  # stemlab.taxonomy.STEMS
    lo: int  # lowest MIDI pitch the part may use
    hi: int
    is_drum: bool = False

    @property
    def bank(self) -> int:
        return 128 if self.is_drum else 0


def _i(program: int, name: str, category: str, lo: int, hi: int) -> Instrument:
    return Instrument(program, name, check_stem(category), lo, hi)


MELODIC: dict[int, Instrument] = {
    i.program: i
    for i in (
        _i(0, "Acoustic Grand Piano", "piano", 28, 100),
        _i(1, "Bright Acoustic Piano", "piano", 28, 100),
        _i(2, "Electric Grand Piano", "piano", 28, 96),
        _i(4, "Electric Piano 1", "piano", 33, 96),
        _i(5, "Electric Piano 2", "piano", 33, 96),
        _i(6, "Harpsichord", "other_keys", 36, 89),
        _i(7, "Clavinet", "other_keys", 36, 91),
        _i(8, "Celesta", "other_keys", 60, 100),
        _i(9, "Glockenspiel", "percussion", 72, 105),
        _i(11, "Vibraphone", "percussion", 53, 89),
        _i(12, "Marimba", "percussion", 45, 96),
        _i(13, "Xylophone", "percussion", 65, 103),
        _i(16, "Drawbar Organ", "other_keys", 36, 91),
        _i(17, "Percussive Organ", "other_keys", 36, 91),
        _i(18, "Rock Organ", "other_keys", 36, 91),
        _i(19, "Church Organ", "other_keys", 36, 91),
        _i(21, "Accordion", "other_keys", 53, 89),
        _i(24, "Acoustic Guitar (nylon)", "guitar", 40, 83),
        _i(25, "Acoustic Guitar (steel)", "guitar", 40, 83),
        _i(26, "Electric Guitar (jazz)", "guitar", 40, 84),
        _i(27, "Electric Guitar (clean)", "guitar", 40, 84),
        _i(28, "Electric Guitar (muted)", "guitar", 40, 76),
        _i(29, "Overdriven Guitar", "guitar", 40, 84),
        _i(30, "Distortion Guitar", "guitar", 40, 84),
        _i(32, "Acoustic Bass", "bass", 28, 55),
        _i(33, "Electric Bass (finger)", "bass", 28, 58),
        _i(34, "Electric Bass (pick)", "bass", 28, 58),
        _i(35, "Fretless Bass", "bass", 28, 58),
        _i(36, "Slap Bass 1", "bass", 28, 58),
        _i(38, "Synth Bass 1", "bass", 24, 55),
        _i(39, "Synth Bass 2", "bass", 24, 55),
        _i(40, "Violin", "bowed_strings", 55, 93),
        _i(41, "Viola", "bowed_strings", 48, 81),
        _i(42, "Cello", "bowed_strings", 36, 72),
        _i(43, "Contrabass", "bass", 28, 55),
        _i(45, "Pizzicato Strings", "bowed_strings", 36, 84),
        _i(46, "Orchestral Harp", "other_plucked", 36, 96),
        _i(48, "String Ensemble 1", "bowed_strings", 36, 88),
        _i(49, "String Ensemble 2", "bowed_strings", 36, 88),
        _i(50, "Synth Strings 1", "other_keys", 36, 88),
        _i(56, "Trumpet", "wind", 55, 82),
        _i(57, "Trombone", "wind", 40, 72),
        _i(60, "French Horn", "wind", 41, 77),
        _i(61, "Brass Section", "wind", 41, 82),
        _i(64, "Soprano Sax", "wind", 56, 87),
        _i(65, "Alto Sax", "wind", 49, 80),
        _i(66, "Tenor Sax", "wind", 44, 75),
        _i(68, "Oboe", "wind", 58, 89),
        _i(70, "Bassoon", "wind", 34, 70),
        _i(71, "Clarinet", "wind", 50, 89),
        _i(73, "Flute", "wind", 60, 93),
        _i(75, "Pan Flute", "wind", 60, 91),
        _i(80, "Lead 1 (square)", "other_keys", 48, 88),
        _i(81, "Lead 2 (sawtooth)", "other_keys", 48, 88),
        _i(88, "Pad 1 (new age)", "other_keys", 40, 84),
        _i(89, "Pad 2 (warm)", "other_keys", 40, 84),
        _i(90, "Pad 3 (polysynth)", "other_keys", 40, 84),
        _i(95, "Pad 8 (sweep)", "other_keys", 40, 84),
        _i(99, "FX 4 (atmosphere)", "other", 40, 84),
        _i(100, "FX 5 (brightness)", "other", 40, 84),
        _i(104, "Sitar", "other_plucked", 48, 77),
        _i(105, "Banjo", "other_plucked", 48, 81),
        _i(107, "Koto", "other_plucked", 55, 88),
        _i(108, "Kalimba", "other_plucked", 60, 88),
        _i(114, "Steel Drums", "percussion", 52, 76),
    )
}

DRUM_KITS: dict[int, Instrument] = {
    k: Instrument(k, name, "drums", 27, 87, is_drum=True)
    for k, name in (
        (0, "Standard Kit"),
        (8, "Room Kit"),
        (16, "Power Kit"),
        (24, "Electronic Kit"),
        (25, "TR-808 Kit"),
        (32, "Jazz Kit"),
        (40, "Brush Kit"),
        (48, "Orchestra Kit"),
    )
}

# auxiliary percussion is played from the standard kit on the drum channel, filed under `percussion`
AUX_PERCUSSION = Instrument(0, "Percussion (Standard Kit)", "percussion", 27, 87, is_drum=True)

# General MIDI percussion keys used by the patterns
KICK, SIDESTICK, SNARE, CLAP = 36, 37, 38, 39
FLOOR_TOM, CLOSED_HAT, LOW_TOM, PEDAL_HAT, MID_TOM, OPEN_HAT, HIGH_TOM = 41, 42, 45, 44, 47, 46, 50
CRASH, RIDE, RIDE_BELL, TAMBOURINE, COWBELL = 49, 51, 53, 54, 56
HI_BONGO, LO_BONGO, MUTE_CONGA, OPEN_CONGA, LO_CONGA = 60, 61, 62, 63, 64
HI_TIMBALE, LO_TIMBALE, CABASA, MARACAS, CLAVES, WOODBLOCK = 65, 66, 69, 70, 75, 76
TRIANGLE = 81
