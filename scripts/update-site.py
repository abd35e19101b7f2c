#!/usr/bin/env python3
"""Writes a Fiji update-site folder for the plugin jar (standard library only):

    OUT/plugins/Fluorecon_-VERSION.jar-TIMESTAMP   the file the updater downloads
    OUT/db.xml.gz                                   the site's index

A lab hosts OUT on any web server and users add its URL in Help > Update... > Manage update
sites. The index follows the ImageJ updater's format (a `pluginRecords` document with its DTD;
per file a `plugin` element with `version checksum timestamp filesize`), and the checksum is
the updater's jar digest: SHA-1 over the jar's entries sorted by name, each entry's name
(ASCII) then its content, where comment lines of `.properties` files are reduced to their
line break and `META-INF/MANIFEST.MF` contributes no content (the updater's manifest filter
keeps nothing of it), so that a rebuilt jar with new dates keeps its checksum.

    scripts/update-site.py JAR OUT
"""

import gzip
import hashlib
import os
import shutil
import sys
import time
import zipfile
from xml.sax.saxutils import escape, quoteattr

DTD = """<!DOCTYPE pluginRecords [
<!ELEMENT pluginRecords ((update-site | disabled-update-site)*, plugin*)>
<!ELEMENT update-site EMPTY>
<!ELEMENT disabled-update-site EMPTY>
<!ELEMENT plugin (platform*, category*, version?, previous-version*)>
<!ELEMENT version (description?, dependency*, link*, author*)>
<!ELEMENT previous-version EMPTY>
<!ELEMENT description (#PCDATA)>
<!ELEMENT dependency EMPTY>
<!ELEMENT link (#PCDATA)>
<!ELEMENT author (#PCDATA)>
<!ELEMENT platform (#PCDATA)>
<!ELEMENT category (#PCDATA)>
<!ATTLIST update-site name CDATA #REQUIRED>
<!ATTLIST update-site url CDATA #REQUIRED>
<!ATTLIST update-site ssh-host CDATA #IMPLIED>
<!ATTLIST update-site upload-directory CDATA #IMPLIED>
<!ATTLIST update-site description CDATA #IMPLIED>
<!ATTLIST update-site maintainer CDATA #IMPLIED>
<!ATTLIST update-site timestamp CDATA #REQUIRED>
<!ATTLIST disabled-update-site name CDATA #REQUIRED>
<!ATTLIST disabled-update-site url CDATA #REQUIRED>
<!ATTLIST disabled-update-site ssh-host CDATA #IMPLIED>
<!ATTLIST disabled-update-site upload-directory CDATA #IMPLIED>
<!ATTLIST disabled-update-site description CDATA #IMPLIED>
<!ATTLIST disabled-update-site maintainer CDATA #IMPLIED>
<!ATTLIST disabled-update-site timestamp CDATA #REQUIRED>
<!ATTLIST plugin update-site CDATA #IMPLIED>
<!ATTLIST plugin filename CDATA #REQUIRED>
<!ATTLIST plugin executable CDATA #IMPLIED>
<!ATTLIST dependency filename CDATA #REQUIRED>
<!ATTLIST dependency timestamp CDATA #IMPLIED>
<!ATTLIST dependency overrides CDATA #IMPLIED>
<!ATTLIST version timestamp CDATA #REQUIRED>
<!ATTLIST version checksum CDATA #REQUIRED>
<!ATTLIST version filesize CDATA #REQUIRED>
<!ATTLIST previous-version filename CDATA #IMPLIED>
<!ATTLIST previous-version timestamp CDATA #REQUIRED>
<!ATTLIST previous-version timestamp-obsolete CDATA #IMPLIED>
<!ATTLIST previous-version checksum CDATA #REQUIRED>]>
"""


def without_comment_lines(data):
    """A .properties file as the updater hashes it: each line starting with '#' becomes its
    line break alone (nothing when it is the last line without one)."""
    out = bytearray()
    for line in data.splitlines(keepends=True):
        if line.startswith(b"#"):
            out += b"\n" if line.endswith(b"\n") else b""
        else:
            out += line
    return bytes(out)


def jar_digest(path):
    """The ImageJ updater's checksum of a jar (hex SHA-1)."""
    sha1 = hashlib.sha1()
    with zipfile.ZipFile(path) as jar:
        for info in sorted(jar.infolist(), key=lambda i: i.filename):
            sha1.update(info.filename.encode("ascii"))
            data = jar.read(info)
            if info.filename == "META-INF/MANIFEST.MF":
                data = b""
            elif info.filename.endswith(".properties"):
                data = without_comment_lines(data)
            sha1.update(data)
    return sha1.hexdigest()


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: update-site.py JAR OUT")
    jar, out = sys.argv[1], sys.argv[2]
    name = "plugins/" + os.path.basename(jar)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(os.path.getmtime(jar)))
    os.makedirs(os.path.join(out, "plugins"), exist_ok=True)
    shutil.copyfile(jar, os.path.join(out, name + "-" + stamp))
    record = (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + DTD + "<pluginRecords>\n"
        f"    <plugin filename={quoteattr(name)}>\n"
        f'        <version checksum="{jar_digest(jar)}" timestamp="{stamp}" '
        f'filesize="{os.path.getsize(jar)}">\n'
        "            <description>"
        + escape(
            "Fluorescence image reconstruction: Richardson-Lucy deconvolution, SIM, "
            "single-molecule localization (MLE, Deep-STORM), Noise2Void and CARE denoising. "
            "Native engine for Windows, macOS, Linux (x86-64 and arm64)."
        )
        + "</description>\n"
        "            <author>The Fluorecon developers</author>\n"
        "        </version>\n"
        "    </plugin>\n"
        "</pluginRecords>\n"
    )
    with gzip.open(os.path.join(out, "db.xml.gz"), "wb") as f:
        f.write(record.encode("utf-8"))
    print(f"update site in {out}: {name}-{stamp}, db.xml.gz")


if __name__ == "__main__":
    main()
