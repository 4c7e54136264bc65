-- Organizations arrive. Every existing space moves into the organization named
-- "default" (a fixed guid the Worker knows), every space role stays, and each of
-- its holders becomes an organization_user there (CC's rule: a space role needs
-- a role in the space's organization). Users gain a password hash, and their
-- opaque token becomes optional.
--
-- D1 cannot turn foreign keys off, and DROP TABLE first deletes the table's
-- rows, which would fire ON DELETE CASCADE on its children. So roles (the only
-- cascading child of spaces and users) are copied aside and dropped before
-- spaces and users are rebuilt, and restored after. Apps and routes point at
-- spaces with NO ACTION, checked at commit (deferred): spaces is dropped and
-- created again under its own name, so inserting its rows back settles those
-- references (a renamed copy filled before the drop would not).
PRAGMA defer_foreign_keys = on;
--> statement-breakpoint
CREATE TABLE `organizations` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`suspended` integer DEFAULT false NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `organizations_name_unique` ON `organizations` (`name`);
--> statement-breakpoint
INSERT INTO `organizations` (`guid`, `name`) VALUES ('8e0c5a1e-5b1a-4d6e-9c3f-defa0170a000', 'default');
--> statement-breakpoint
CREATE TABLE `__roles_before_orgs` AS SELECT `guid`, `type`, `user_guid`, `space_guid`, `created_at`, `updated_at` FROM `roles`;
--> statement-breakpoint
DROP TABLE `roles`;
--> statement-breakpoint
CREATE TABLE `__spaces_before_orgs` AS SELECT `guid`, `name`, `created_at`, `updated_at` FROM `spaces`;
--> statement-breakpoint
DROP TABLE `spaces`;
--> statement-breakpoint
CREATE TABLE `spaces` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`organization_guid` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`organization_guid`) REFERENCES `organizations`(`guid`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
INSERT INTO `spaces` (`guid`, `name`, `organization_guid`, `created_at`, `updated_at`)
	SELECT `guid`, `name`, '8e0c5a1e-5b1a-4d6e-9c3f-defa0170a000', `created_at`, `updated_at` FROM `__spaces_before_orgs`;
--> statement-breakpoint
DROP TABLE `__spaces_before_orgs`;
--> statement-breakpoint
CREATE UNIQUE INDEX `spaces_org_name` ON `spaces` (`organization_guid`,`name`);
--> statement-breakpoint
CREATE INDEX `spaces_org` ON `spaces` (`organization_guid`);
--> statement-breakpoint
CREATE TABLE `__new_users` (
	`guid` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`admin` integer DEFAULT false NOT NULL,
	`token_hash` text,
	`password_hash` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_users` (`guid`, `name`, `admin`, `token_hash`, `created_at`, `updated_at`)
	SELECT `guid`, `name`, `admin`, `token_hash`, `created_at`, `updated_at` FROM `users`;
--> statement-breakpoint
DROP TABLE `users`;
--> statement-breakpoint
ALTER TABLE `__new_users` RENAME TO `users`;
--> statement-breakpoint
CREATE UNIQUE INDEX `users_name_unique` ON `users` (`name`);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_token_hash_unique` ON `users` (`token_hash`);
--> statement-breakpoint
CREATE TABLE `roles` (
	`guid` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`user_guid` text NOT NULL,
	`organization_guid` text NOT NULL,
	`space_guid` text,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	FOREIGN KEY (`user_guid`) REFERENCES `users`(`guid`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`organization_guid`) REFERENCES `organizations`(`guid`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`space_guid`) REFERENCES `spaces`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `roles_user_space_type` ON `roles` (`user_guid`,`space_guid`,`type`);
--> statement-breakpoint
CREATE UNIQUE INDEX `roles_user_org_type` ON `roles` (`user_guid`,`organization_guid`,`type`) WHERE space_guid IS NULL;
--> statement-breakpoint
CREATE INDEX `roles_org` ON `roles` (`organization_guid`);
--> statement-breakpoint
CREATE INDEX `roles_space` ON `roles` (`space_guid`);
--> statement-breakpoint
INSERT INTO `roles` (`guid`, `type`, `user_guid`, `organization_guid`, `space_guid`, `created_at`, `updated_at`)
	SELECT `guid`, `type`, `user_guid`, '8e0c5a1e-5b1a-4d6e-9c3f-defa0170a000', `space_guid`, `created_at`, `updated_at` FROM `__roles_before_orgs`;
--> statement-breakpoint
INSERT INTO `roles` (`guid`, `type`, `user_guid`, `organization_guid`, `space_guid`)
	SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
		'organization_user', `user_guid`, '8e0c5a1e-5b1a-4d6e-9c3f-defa0170a000', NULL
	FROM (SELECT DISTINCT `user_guid` FROM `__roles_before_orgs`);
--> statement-breakpoint
DROP TABLE `__roles_before_orgs`;
--> statement-breakpoint
CREATE TABLE `sessions` (
	`guid` text PRIMARY KEY NOT NULL,
	`user_guid` text NOT NULL,
	`client_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`user_guid`) REFERENCES `users`(`guid`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `sessions_user` ON `sessions` (`user_guid`);
--> statement-breakpoint
CREATE TABLE `login_failures` (
	`username` text PRIMARY KEY NOT NULL,
	`failures` integer NOT NULL,
	`window_start` integer NOT NULL
);
