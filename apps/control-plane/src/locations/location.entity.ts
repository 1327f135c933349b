import { Check, Column, CreateDateColumn, Entity, PrimaryColumn, Unique, UpdateDateColumn } from 'typeorm';
import type { LocationKind } from '@wsmon/contracts';

@Entity({ name: 'locations' })
@Unique('locations_name_key', ['name'])
@Check('locations_kind_check', `kind IN ('private', 'managed')`)
export class LocationEntity {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'locations_pkey' })
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text' })
  kind!: LocationKind;

  @Column({ type: 'text', nullable: true })
  region!: string | null;

  @Column({ type: 'jsonb', default: {} })
  labels!: Record<string, string>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}
