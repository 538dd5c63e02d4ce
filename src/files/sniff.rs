//! What a file is, decided by its first bytes (never by the name or the declared type alone):
//! the allow-list of SPEC section 3 (pdf, images, office, text, audio, video). A name whose
//! extension claims another kind than the content is refused too, so a `.pdf` that is an
//! image, or a program renamed `notes.txt`, never gets in under a false name.

/// How many leading bytes the decision needs (OOXML names its parts within the first few KB).
pub const SNIFF_BYTES: usize = 8192;

/// A broad family of allowed files, as the dashboard groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Pdf,
    Image,
    Document,
    Spreadsheet,
    Presentation,
    Text,
    Audio,
    Video,
}

impl Family {
    /// The family's name in the API (`type` of a document).
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Pdf => "pdf",
            Family::Image => "image",
            Family::Document => "document",
            Family::Spreadsheet => "spreadsheet",
            Family::Presentation => "presentation",
            Family::Text => "text",
            Family::Audio => "audio",
            Family::Video => "video",
        }
    }
}

/// The verdict on a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// The media type stored and served (from the content, not from the client).
    pub mime: &'static str,
    pub family: Family,
    /// Extensions a name may carry for this content.
    extensions: &'static [&'static str],
}

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The content is not of an allowed kind (an executable, an archive, unknown binary).
    NotAllowed,
    /// The content is allowed but the name's extension claims something else.
    ExtensionMismatch {
        extension: String,
        detected: &'static str,
    },
}

const fn kind(mime: &'static str, family: Family, extensions: &'static [&'static str]) -> Kind {
    Kind {
        mime,
        family,
        extensions,
    }
}

/// Content types recognised by their signature, with the extensions each may be named with.
const SIGNED: &[Kind] = &[
    kind("application/pdf", Family::Pdf, &["pdf"]),
    kind("image/jpeg", Family::Image, &["jpg", "jpeg", "jpe", "jfif"]),
    kind("image/png", Family::Image, &["png"]),
    kind("image/gif", Family::Image, &["gif"]),
    kind("image/webp", Family::Image, &["webp"]),
    kind("image/bmp", Family::Image, &["bmp"]),
    kind("image/tiff", Family::Image, &["tif", "tiff"]),
    kind("image/heif", Family::Image, &["heic", "heif"]),
    kind("image/avif", Family::Image, &["avif"]),
    kind(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Family::Document,
        &["docx"],
    ),
    kind(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Family::Spreadsheet,
        &["xlsx"],
    ),
    kind(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Family::Presentation,
        &["pptx"],
    ),
    kind(
        "application/vnd.oasis.opendocument.text",
        Family::Document,
        &["odt"],
    ),
    kind(
        "application/vnd.oasis.opendocument.spreadsheet",
        Family::Spreadsheet,
        &["ods"],
    ),
    kind(
        "application/vnd.oasis.opendocument.presentation",
        Family::Presentation,
        &["odp"],
    ),
    kind("application/rtf", Family::Document, &["rtf"]),
    kind("audio/mpeg", Family::Audio, &["mp3", "mpga"]),
    kind("audio/m4a", Family::Audio, &["m4a"]),
    kind("audio/ogg", Family::Audio, &["ogg", "oga", "opus"]),
    kind("audio/opus", Family::Audio, &["opus", "ogg"]),
    kind("audio/x-flac", Family::Audio, &["flac"]),
    kind("audio/x-wav", Family::Audio, &["wav"]),
    kind("audio/aac", Family::Audio, &["aac"]),
    kind("audio/amr", Family::Audio, &["amr"]),
    kind("audio/x-aiff", Family::Audio, &["aif", "aiff"]),
    kind("video/mp4", Family::Video, &["mp4", "m4v"]),
    kind("video/x-m4v", Family::Video, &["m4v", "mp4"]),
    kind("video/webm", Family::Video, &["webm"]),
    kind("video/x-matroska", Family::Video, &["mkv"]),
    kind("video/quicktime", Family::Video, &["mov", "qt"]),
    kind("video/x-msvideo", Family::Video, &["avi"]),
    kind("video/x-ms-wmv", Family::Video, &["wmv"]),
    kind("video/mpeg", Family::Video, &["mpeg", "mpg"]),
];

/// Legacy Office files share one container signature (OLE2); the name tells which they are.
const LEGACY_OFFICE: &[Kind] = &[
    kind("application/msword", Family::Document, &["doc", "dot"]),
    kind("application/vnd.ms-excel", Family::Spreadsheet, &["xls", "xlt"]),
    kind(
        "application/vnd.ms-powerpoint",
        Family::Presentation,
        &["ppt", "pps", "pot"],
    ),
];

const OLE2: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

const PLAIN_TEXT: Kind = kind("text/plain", Family::Text, &["txt", "text", "md", "log"]);
const CSV: Kind = kind("text/csv", Family::Text, &["csv", "tsv"]);

/// The lowercase extension of `name`, if it has one.
pub fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// Decides what `head` (the first up to `SNIFF_BYTES` of the file, or all of it) is, and
/// whether `name` may be its name.
pub fn sniff(head: &[u8], name: &str) -> Result<Kind, Refusal> {
    let ext = extension(name);
    let found = detect(head, ext.as_deref())?;
    match ext {
        Some(e) if !found.extensions.contains(&e.as_str()) => Err(Refusal::ExtensionMismatch {
            extension: e,
            detected: found.family.as_str(),
        }),
        _ => Ok(found),
    }
}

/// Only images, for avatars and banners (no SVG: it can carry scripts).
pub fn sniff_image(head: &[u8], name: &str) -> Result<Kind, Refusal> {
    let found = sniff(head, name)?;
    match found.family {
        Family::Image => Ok(found),
        _ => Err(Refusal::NotAllowed),
    }
}

fn detect(head: &[u8], ext: Option<&str>) -> Result<Kind, Refusal> {
    if head.starts_with(&OLE2) {
        // The container is Office's; which application made it only the name says.
        return LEGACY_OFFICE
            .iter()
            .find(|k| ext.is_some_and(|e| k.extensions.contains(&e)))
            .copied()
            .ok_or(Refusal::NotAllowed);
    }
    if let Some(t) = infer::get(head) {
        return SIGNED
            .iter()
            .find(|k| k.mime == t.mime_type())
            .copied()
            .ok_or(Refusal::NotAllowed);
    }
    if is_text(head) {
        return Ok(match ext {
            Some(e) if CSV.extensions.contains(&e) => CSV,
            _ => PLAIN_TEXT,
        });
    }
    Err(Refusal::NotAllowed)
}

/// Whether `head` reads as text: UTF-8 (a character cut at the end of the sample is fine)
/// without NUL or other control characters than tab, line breaks and form feed.
fn is_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // Only a sequence cut by the sample's end is forgiven.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            match std::str::from_utf8(&head[..e.valid_up_to()]) {
                Ok(s) => s,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    !valid
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0\x01\0\0\0";

    #[test]
    fn content_decides_and_the_name_must_agree() {
        assert_eq!(sniff(PDF, "informe.pdf").map(|k| k.mime), Ok("application/pdf"));
        assert_eq!(sniff(PNG, "diagrama.PNG").map(|k| k.family), Ok(Family::Image));
        assert_eq!(sniff(PNG, "sin-extension").map(|k| k.mime), Ok("image/png"));
        assert!(matches!(
            sniff(PNG, "informe.pdf"),
            Err(Refusal::ExtensionMismatch { .. })
        ));
        assert_eq!(sniff(ELF, "notas.txt"), Err(Refusal::NotAllowed));
        assert_eq!(
            sniff(b"PK\x03\x04\x14\0\0\0\x08\0", "a.zip"),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn text_is_utf8_without_control_characters() {
        assert_eq!(
            sniff("Respiración 4-7-8\n".as_bytes(), "ejercicio.txt").map(|k| k.mime),
            Ok("text/plain")
        );
        assert_eq!(sniff(b"a,b\n1,2\n", "datos.csv").map(|k| k.mime), Ok("text/csv"));
        // A sample that ends inside a two-byte character is still text.
        let cut = &"ó".as_bytes()[..1];
        assert!(is_text(&[b"abc".as_slice(), cut].concat()));
        assert_eq!(sniff(b"abc\0def", "x.txt"), Err(Refusal::NotAllowed));
        assert!(sniff(b"<html><script>alert(1)</script>", "page.html").is_err());
        assert!(sniff(b"<html><script>alert(1)</script>", "page.txt").is_err());
        assert_eq!(sniff(b"", "empty.txt"), Err(Refusal::NotAllowed));
    }

    #[test]
    fn legacy_office_takes_its_kind_from_the_name() {
        let mut head = OLE2.to_vec();
        head.extend_from_slice(&[0; 64]);
        assert_eq!(
            sniff(&head, "consent.doc").map(|k| k.mime),
            Ok("application/msword")
        );
        assert_eq!(
            sniff(&head, "cuentas.xls").map(|k| k.family),
            Ok(Family::Spreadsheet)
        );
        assert_eq!(sniff(&head, "setup.msi"), Err(Refusal::NotAllowed));
        assert_eq!(sniff(&head, "noname"), Err(Refusal::NotAllowed));
    }

    #[test]
    fn avatars_are_images_only() {
        assert!(sniff_image(PNG, "me.png").is_ok());
        assert_eq!(sniff_image(PDF, "me.pdf"), Err(Refusal::NotAllowed));
        assert!(sniff_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "me.svg").is_err());
    }

    #[test]
    fn extensions_are_read_from_the_last_dot_of_the_base_name() {
        assert_eq!(extension("a/b.c/report.Final.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("README"), None);
    }
}
