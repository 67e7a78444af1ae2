import pytest

from gateway.edxml import safe_file_name


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Quyết định số 1.pdf", "Quyết định số 1.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system32\\x.exe", "x.exe"),
        ("/absolute/path.pdf", "path.pdf"),
        ("..", "attachment"),
        (".", "attachment"),
        ("", "attachment"),
        (" . ", "attachment"),
        ("a\x00b\x1fc.pdf", "a b c.pdf"),
        ("bidi\u202etxt.exe", "bidi txt.exe"),
        ('a<b>c:d"e|f?g*h.pdf', "a_b_c_d_e_f_g_h.pdf"),
        (".hidden", "hidden"),
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("con .pdf", "_con .pdf"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("COM¹.pdf", "_COM¹.pdf"),
        ("LPT³", "_LPT³"),
        ("console.txt", "console.txt"),
    ],
)
def test_names(name, safe):
    assert safe_file_name(name) == safe


def test_long_names_keep_their_extension_and_whole_characters():
    safe = safe_file_name("ệ" * 500 + ".pdf")
    assert safe.endswith(".pdf") and len(safe.encode()) <= 200
    safe.encode().decode("utf-8")  # no character cut in half
