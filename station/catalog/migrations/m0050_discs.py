"""Disc jobs and discs (R11, R12, R13). Owned by the disc part; later migrations 0051–0059
extend it.

A *job* is one ``station disc build`` of one or more long-term-keep cases onto one media type. It
holds ``discs_total`` discs ("disc i of n"); every disc is made in two copies, A and B (R12),
and each copy is one row of ``disc_images``: its image, the image's SHA-256, its label, whether
the image was read back through independent readers, and where the burned disc is kept.
"""

import sqlite_utils

from station.catalog.migrations import execute_script

SCHEMA = """
create table disc_jobs (
  id integer primary key,
  media text not null,               -- dvd | bd25 | bd50 | bd100
  state text not null,               -- planned | building | built | verified | failed
  out_dir text not null,             -- folder of the images and labels
  discs_total integer not null,
  bytes_total integer not null,      -- payload bytes of one copy of the whole set
  plan text not null,                -- JSON: the disc plan (files per disc)
  created_at text not null,
  created_by text not null,
  finished_at text,
  error text
);
create table disc_job_cases (
  job_id integer not null references disc_jobs(id),
  case_number text not null references cases(number),
  primary key (job_id, case_number)
);
create index disc_job_cases_case on disc_job_cases(case_number);
create table disc_images (
  id integer primary key,
  job_id integer not null references disc_jobs(id),
  disc_no integer not null,          -- i of disc_jobs.discs_total
  copy text not null check (copy in ('A', 'B')),   -- R12: two copies
  volume_id text not null,           -- ISO 9660 / Joliet volume id (<= 16 d-characters)
  media text not null,
  state text not null,               -- building | built | verified | corrupt | failed | burned
  image_path text,                   -- the ISO image (absolute)
  image_size integer,
  image_sha256 text,                 -- SHA-256 of the whole image, recorded at verification
  label_html text,
  label_pdf text,
  payload_bytes integer not null,
  files integer not null,
  built_by text,
  built_at text,
  verified_by text,
  verified_at text,
  verify_result text,                -- JSON: per reader, files checked, mismatches
  burned_by text,
  burned_at text,
  burn_device text,                  -- /dev/srN, or 'elsewhere' for mark-burned
  burn_readback text,                -- 'match' when the disc was read back and matched
  location text,                     -- where the disc is kept (shelf, cabinet)
  expected text,                     -- JSON: every file on the image (path, joliet, sha256, size)
  error text,
  unique (job_id, disc_no, copy)
);
create index disc_images_job on disc_images(job_id);
create table disc_contents (
  job_id integer not null references disc_jobs(id),
  disc_no integer not null,
  case_number text not null,
  sha256 text not null,              -- the file's own hash (original or derivative)
  recording_sha256 text not null,    -- the original it belongs to
  role text not null,                -- original | derivative
  path text not null,                -- full (Rock Ridge / UDF) path on the disc
  size integer not null,
  primary key (job_id, disc_no, path)
);
create index disc_contents_recording on disc_contents(recording_sha256);
create index disc_contents_case on disc_contents(case_number);
-- Per case and copy, in the case's latest job that did not fail: are all discs holding the
-- case verified (or burned after verification), all burned, and where are they kept. For the
-- retention and compliance reports (R12: two verified copies; R13: storage location).
create view disc_case_copies as
select dc.case_number as case_number,
       i.copy as copy,
       dc.job_id as job_id,
       min(i.state in ('verified', 'burned')) as verified,
       min(i.state = 'burned') as burned,
       group_concat(distinct i.location) as location
from (select distinct job_id, disc_no, case_number from disc_contents) dc
join disc_images i on i.job_id = dc.job_id and i.disc_no = dc.disc_no
where dc.job_id = (
  select max(j.id) from disc_jobs j join disc_job_cases jc on jc.job_id = j.id
  where jc.case_number = dc.case_number and j.state != 'failed')
group by dc.case_number, i.copy, dc.job_id;
"""


def up(db: sqlite_utils.Database) -> None:
    execute_script(db, SCHEMA)
