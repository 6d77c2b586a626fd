"""bench/RESULTS.md: each bench owns a section between its two markers."""
import os


def write_section(path, begin, end, lines):
    """Put lines (which start with begin and end with end) in place of the
    section between those markers in path, or append them."""
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if begin in text and end in text:
        text = text[:text.index(begin)] + "\n".join(lines) + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
